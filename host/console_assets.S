/*
 * console_assets - the web console's files (host/console/), embedded in
 * bctx-host by the assembler's .incbin, so that the binary serves them
 * without a build step or files beside it.  Paths are relative to the
 * source root, where make runs (O= moves only the outputs).  Each file is
 * the bytes between its NAME and NAME_end symbols (see console.c).
 */
#define BCTX_ASSET(name, file)          \
    .globl name, name##_end;            \
    .balign 16;                         \
name:                                   \
    .incbin file;                       \
name##_end:

    .section .rodata
BCTX_ASSET (bctx_console_index_html, "host/console/index.html")
BCTX_ASSET (bctx_console_css, "host/console/console.css")
BCTX_ASSET (bctx_console_js, "host/console/console.js")

/* No executable stack: this object must not ask for one. */
    .section .note.GNU-stack, "", @progbits
