#ifndef CONCORD_CHIREDIS_SHIM_H
#define CONCORD_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

/* Request parsing for the node's RESP front end. hiredis 0.14 has no bound on a multibulk
 * length, so "*2000000000" would make it allocate the element table at once. The reader gets a
 * copy of its own object functions with createArray replaced by a check: a client's command is
 * one flat array of at most max_elements, anything else fails the read (hiredis reports it as
 * out of memory, and `refused` says why). */
typedef struct concord_request_limits {
    redisReplyObjectFunctions functions;
    redisReplyObjectFunctions *defaults;
    int max_elements;
    int refused;
} concord_request_limits;

static inline void *concord_create_request_array(const redisReadTask *task, int elements) {
    concord_request_limits *limits = (concord_request_limits *)task->privdata;
    if (task->parent != NULL || elements < 0 || elements > limits->max_elements) {
        limits->refused = 1;
        return NULL;
    }
    return limits->defaults->createArray(task, elements);
}

static inline void concord_limit_request_reader(redisReader *reader, concord_request_limits *limits, int max_elements) {
    limits->defaults = reader->fn;
    limits->functions = *reader->fn;
    limits->functions.createArray = concord_create_request_array;
    limits->max_elements = max_elements;
    limits->refused = 0;
    reader->fn = &limits->functions;
    reader->privdata = limits;
}

#endif
