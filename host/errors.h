/*
 * errors - the host's one code space (libuv's UV_ERRNO_MAP): every
 * outcome a module returns is 0 or one of the negative BCTX_E* codes
 * below, with one human text (bctx_strerror) and one wire code of the
 * protocol (bctx_error_wire, DESIGN.md's list).  The wire codes' strings
 * are the BCTX_E_* macros, which the replies carry.
 */
#ifndef BCTX_ERRORS_H
#define BCTX_ERRORS_H

/* The wire's error codes, as replies carry them (DESIGN.md). */
#define BCTX_E_BAD_REQUEST      "bad_request"
#define BCTX_E_UNKNOWN_CONTEXT  "unknown_context"
#define BCTX_E_UNKNOWN_COMMAND  "unknown_command"
#define BCTX_E_UNKNOWN_PROJECTION "unknown_projection"
#define BCTX_E_REJECTED         "rejected"
#define BCTX_E_CONFLICT         "conflict"
#define BCTX_E_UNAVAILABLE      "unavailable"
#define BCTX_E_TOO_LARGE        "too_large"
#define BCTX_E_FORBIDDEN        "forbidden"
#define BCTX_E_INTERNAL         "internal"

/*
 * XX (name, value, wire code, text): one line a code.  The first ten are
 * the wire's own; the others are outcomes inside the host, each with the
 * wire code a reply about it carries.
 */
#define BCTX_ERRNO_MAP(XX)                                                          \
    XX (EBADREQUEST,    -1,  BCTX_E_BAD_REQUEST,   "bad request")                   \
    XX (ENOCONTEXT,     -2,  BCTX_E_UNKNOWN_CONTEXT, "unknown context")             \
    XX (ENOCOMMAND,     -3,  BCTX_E_UNKNOWN_COMMAND, "unknown command")             \
    XX (ENOPROJECTION,  -4,  BCTX_E_UNKNOWN_PROJECTION, "unknown projection")       \
    XX (EREJECTED,      -5,  BCTX_E_REJECTED,      "rejected by the context")       \
    XX (ECONFLICT,      -6,  BCTX_E_CONFLICT,      "conflict")                      \
    XX (EUNAVAILABLE,   -7,  BCTX_E_UNAVAILABLE,   "unavailable, try again")        \
    XX (ETOOLARGE,      -8,  BCTX_E_TOO_LARGE,     "too large")                     \
    XX (EFORBIDDEN,     -9,  BCTX_E_FORBIDDEN,     "forbidden")                     \
    XX (EINTERNAL,      -10, BCTX_E_INTERNAL,      "internal error")                \
    XX (ELOAD,          -20, BCTX_E_BAD_REQUEST,   "the plugin did not load")       \
    XX (ELOADFORBIDDEN, -21, BCTX_E_FORBIDDEN,     "the plugin is outside the plugin folders") \
    XX (ELOADTOOBIG,    -22, BCTX_E_TOO_LARGE,     "the plugin file is too big")    \
    XX (ELOADTIMEDOUT,  -23, BCTX_E_UNAVAILABLE,   "loading the plugin timed out")  \
    XX (ESTORE,         -30, BCTX_E_INTERNAL,      "the store failed (I/O or SQLite)") \
    XX (ESTORECONFLICT, -31, BCTX_E_CONFLICT,      "the expected version is not the current one") \
    XX (ESTOREDAMAGED,  -32, BCTX_E_INTERNAL,      "the store's file is damaged")   \
    XX (ESTORECUTSHORT, -33, BCTX_E_INTERNAL,      "the store's check ran out of time")

/* The codes: BCTX_EOK, then BCTX_EBADREQUEST … (negative). */
enum {
    BCTX_EOK = 0,
#define BCTX_ERRNO_XX(name, value, wire, text) BCTX_##name = value,
    BCTX_ERRNO_MAP (BCTX_ERRNO_XX)
#undef BCTX_ERRNO_XX
};

/* The human text of code (static): "ok" for 0, "unknown error" for a
 * code that is not one of ours. */
const char *bctx_strerror (int code);

/* The wire code a reply about code carries (static, a BCTX_E_*):
 * BCTX_E_INTERNAL for a code that is not one of ours, NULL for 0. */
const char *bctx_error_wire (int code);

#endif
