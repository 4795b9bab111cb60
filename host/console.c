/*
 * console - the web console's embedded files by URL path.  The bytes are
 * linked in from console_assets.S; this module only names them, so that
 * http.c routes to it and knows nothing of the files.
 */

#include "console.h"

#include <string.h>

extern const char bctx_console_index_html[], bctx_console_index_html_end[];
extern const char bctx_console_css[], bctx_console_css_end[];
extern const char bctx_console_js[], bctx_console_js_end[];

int
bctx_console_find (const char *path, bctx_console_file_t *file)
{
    static const struct {
        const char *path;         /* the URL path it is served at */
        const char *start, *end;  /* its bytes, from console_assets.S */
        const char *type;         /* its Content-Type */
    } files[] = {
        { "/", bctx_console_index_html, bctx_console_index_html_end,
          "text/html; charset=utf-8" },
        { "/console.css", bctx_console_css, bctx_console_css_end, "text/css; charset=utf-8" },
        { "/console.js", bctx_console_js, bctx_console_js_end,
          "text/javascript; charset=utf-8" },
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (strcmp (files[i].path, path) == 0) {
            *file = (bctx_console_file_t) { files[i].start,
                                            (size_t) (files[i].end - files[i].start),
                                            files[i].type };
            return 0;
        }
    return -1;
}
