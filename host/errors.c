/*
 * errors - the texts and wire codes of the host's one code space.
 */
#include "errors.h"

#include <stddef.h>

const char *
bctx_strerror (int code)
{
    switch (code) {
    case BCTX_EOK:
        return "ok";
#define BCTX_ERRNO_XX(name, value, wire, text) case BCTX_##name: return text;
    BCTX_ERRNO_MAP (BCTX_ERRNO_XX)
#undef BCTX_ERRNO_XX
    default:
        return "unknown error";
    }
}

const char *
bctx_error_wire (int code)
{
    switch (code) {
    case BCTX_EOK:
        return NULL;
#define BCTX_ERRNO_XX(name, value, wire, text) case BCTX_##name: return wire;
    BCTX_ERRNO_MAP (BCTX_ERRNO_XX)
#undef BCTX_ERRNO_XX
    default:
        return BCTX_E_INTERNAL;
    }
}
