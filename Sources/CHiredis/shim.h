#ifndef CONCORD_CHIREDIS_SHIM_H
#define CONCORD_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

/* Reply parsing for the Redis client. Replies come from the wire too (the trust boundary), and
 * hiredis 0.14 would allocate the element table of "*1888888888" at once. Each array is bounded,
 * and so is the sum of the elements of one top-level reply, so a few bytes can never ask for
 * gigabytes. Refusal fails the read (hiredis reports it as out of memory; `refused` says why). */
typedef struct concord_reply_limits {
    redisReplyObjectFunctions functions;
    redisReplyObjectFunctions *defaults;
    long long max_elements;
    long long max_total;
    long long total;
    int refused;
} concord_reply_limits;

static inline void *concord_create_reply_array(const redisReadTask *task, int elements) {
    concord_reply_limits *limits = (concord_reply_limits *)task->privdata;
    if (task->parent == NULL) limits->total = 0;
    if (elements < 0 || elements > limits->max_elements || limits->total + elements > limits->max_total) {
        limits->refused = 1;
        return NULL;
    }
    limits->total += elements;
    return limits->defaults->createArray(task, elements);
}

static inline void concord_limit_reply_reader(redisReader *reader, concord_reply_limits *limits, long long max_elements, long long max_total) {
    limits->defaults = reader->fn;
    limits->functions = *reader->fn;
    limits->functions.createArray = concord_create_reply_array;
    limits->max_elements = max_elements;
    limits->max_total = max_total;
    limits->total = 0;
    limits->refused = 0;
    reader->fn = &limits->functions;
    reader->privdata = limits;
}

#endif
