/*
 * constructor - a test-only context, named "ctor", that runs code the
 * moment it is loaded: an __attribute__((constructor)) creates the file
 * named by $BCTX_TEST_MARKER (when set) before the host has checked
 * anything.  Otherwise a valid plugin: its one command "Do" (aggregate id
 * in data.id) emits "Done".  Tests show with it that a plugin from outside
 * host.plugin_dirs is refused before anything opens it: no marker appears.
 */
#include <bctx/plugin.h>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* What a plugin from a stranger could do at load: anything.  Here it only
 * leaves a trace. */
__attribute__ ((constructor)) static void
s_constructed (void)
{
    const char *marker = getenv ("BCTX_TEST_MARKER");
    if (!marker || !*marker)
        return;
    int fd = open (marker, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (write (fd, "constructed\n", 12) != 12) {
            /* the file's existence is the trace; its text is a courtesy */
        }
        close (fd);
    }
}

static int
s_do (void *user, const json_t *state, const json_t *data, json_t *events,
      bctx_reason_t *why)
{
    (void) user, (void) state, (void) data, (void) why;
    bctx_emit (events, "Done", json_object ());
    return BCTX_OK;
}

static json_t *
s_evolve (void *user, json_t *state, const char *type, const json_t *data)
{
    (void) user, (void) type, (void) data;
    return state ? state : json_object ();
}

static const bctx_command_t s_commands[] = {
    { .name = "Do", .aggregate_field = "id", .decide = s_do },
    { .name = NULL }
};

static const bctx_context_t s_context = BCTX_CONTEXT_INIT (
    .name = "ctor",
    .version = "1.0.0",
    .commands = s_commands,
    .evolve = s_evolve,
);

BCTX_DECLARE_CONTEXT (s_context)
