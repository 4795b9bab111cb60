/*
 * no_entry - a test-only shared object that loads fine but is not a bctx
 * plugin: it exports a function, just not bctx_context().  The loader must
 * refuse it for the missing entry symbol, after dlopen succeeded.
 */
#include <bctx/plugin.h>

/* Exported under a name that is close to, but not, BCTX_ENTRY_SYMBOL. */
__attribute__ ((visibility ("default"))) int bctx_context_missing (void);

int
bctx_context_missing (void)
{
    return 42;
}
