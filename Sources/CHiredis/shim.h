#ifndef CONCORD_CHIREDIS_SHIM_H
#define CONCORD_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#endif
