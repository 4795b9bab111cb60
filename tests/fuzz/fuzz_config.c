/*
 * fuzz_config - libFuzzer target for the config reader: each input is a
 * config's text, given to bctx_config_parse.  A config it accepts must
 * hold what the struct promises (limits in range, strings set); one it
 * refuses must say why, starting with the file's name.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *text = malloc (size + 1);
    if (!text)
        return 0;
    memcpy (text, data, size);
    text[size] = '\0';
    char err[512] = "";
    bctx_config_t *config = bctx_config_parse (text, "fuzz.json", err, sizeof err);
    free (text);
    if (!config) {
        if (strncmp (err, "fuzz.json: ", 11) != 0) {
            fprintf (stderr, "fuzz_config: a refusal without its reason: \"%s\"\n", err);
            abort ();
        }
        return 0;
    }
    if (!config->name || !config->api || !config->data
        || config->max_message < 64 || config->max_batch < 1
        || config->max_events_per_command < 1 || config->max_events_per_command > 100000) {
        fprintf (stderr, "fuzz_config: an accepted config out of its bounds\n");
        abort ();
    }
    for (size_t i = 0; i < config->n_contexts; i++)
        if (!config->contexts[i].name || !config->contexts[i].plugin
            || !config->contexts[i].settings)
            abort ();
    for (size_t i = 0; i < config->n_remotes; i++)
        if (config->remotes[i].peer >= config->n_peers)
            abort ();
    bctx_config_destroy (&config);
    return 0;
}
