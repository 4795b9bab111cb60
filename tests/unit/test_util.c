/*
 * test_util - unit tests of host/util: bctx_mkdirs makes a folder with its
 * missing parents and takes an existing one, and refuses, naming it, a
 * file that is in the way; bctx_now never goes back; bctx_grow keeps what
 * the array held and zeroes what it adds; bctx_strings_free frees an array
 * of strings whole (LeakSanitizer, in the sanitized suite, fails the test
 * on what it would leave); bctx_name_valid is the host's name rule;
 * bctx_nearest finds a typo's word and guesses nothing when none or two
 * are as near.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* A fresh temporary folder for one test (new; removed by s_rmrf). */
static char *
s_tempdir (void)
{
    const char *tmp = getenv ("TMPDIR");
    char *dir = NULL;
    if (asprintf (&dir, "%s/bctx-test-util-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0
        || !mkdtemp (dir))
        fail_msg ("cannot make a temporary folder");
    return dir;
}

/* Removes dir and what is under it. */
static void
s_rmrf (char *dir)
{
    char *cmd = NULL;
    if (asprintf (&cmd, "rm -rf '%s'", dir) >= 0 && system (cmd) != 0)
        fprintf (stderr, "cannot remove %s\n", dir);
    free (cmd);
    free (dir);
}

/* Is path a folder? */
static int
s_is_dir (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

static void
test_mkdirs_nested (void **state)
{
    (void) state;
    char *dir = s_tempdir ();
    char path[512], err[256] = "";
    snprintf (path, sizeof path, "%s/a/b/c", dir);
    assert_int_equal (bctx_mkdirs (path, 0700, err, sizeof err), 0);
    assert_true (s_is_dir (path));
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0700);
    /* Again: everything is there already, which is fine. */
    assert_int_equal (bctx_mkdirs (path, 0700, err, sizeof err), 0);
    /* A trailing slash and a doubled one. */
    snprintf (path, sizeof path, "%s/a//d/", dir);
    assert_int_equal (bctx_mkdirs (path, 0755, err, sizeof err), 0);
    snprintf (path, sizeof path, "%s/a/d", dir);
    assert_true (s_is_dir (path));
    s_rmrf (dir);
}

static void
test_mkdirs_file_in_the_way (void **state)
{
    (void) state;
    char *dir = s_tempdir ();
    char file[512], path[600], err[256] = "";
    snprintf (file, sizeof file, "%s/plain", dir);
    FILE *f = fopen (file, "w");
    assert_non_null (f);
    fclose (f);
    /* The file is the folder asked for... */
    assert_int_equal (bctx_mkdirs (file, 0755, err, sizeof err), -1);
    assert_non_null (strstr (err, file));
    assert_non_null (strstr (err, "not a folder"));
    /* ...or one of its parents. */
    err[0] = '\0';
    snprintf (path, sizeof path, "%s/below", file);
    assert_int_equal (bctx_mkdirs (path, 0755, err, sizeof err), -1);
    assert_non_null (strstr (err, "cannot create"));
    assert_non_null (strstr (err, file));
    assert_false (s_is_dir (path));
    /* No path at all. */
    assert_int_equal (bctx_mkdirs ("", 0755, err, sizeof err), -1);
    assert_true (err[0] != '\0');
    s_rmrf (dir);
}

static void
test_now (void **state)
{
    (void) state;
    double a = bctx_now ();
    usleep (2000);
    double b = bctx_now ();
    assert_true (a > 0);
    assert_true (b > a);
}

static void
test_grow (void **state)
{
    (void) state;
    int *items = NULL;
    size_t cap = 0;
    bctx_grow ((void **) &items, &cap, 1, sizeof *items);
    assert_non_null (items);
    assert_true (cap >= 1);
    for (size_t i = 0; i < 100; i++) {
        bctx_grow ((void **) &items, &cap, i + 1, sizeof *items);
        assert_true (cap >= i + 1);
        assert_int_equal (items[i], 0);    /* what it adds is zeroed */
        items[i] = (int) i;
    }
    for (size_t i = 0; i < 100; i++)
        assert_int_equal (items[i], (int) i);
    size_t before = cap;
    bctx_grow ((void **) &items, &cap, 3, sizeof *items);   /* big enough: unchanged */
    assert_int_equal (cap, before);
    free (items);
    char *p = bctx_malloc (0);
    assert_non_null (p);
    p = bctx_realloc (p, 64);
    memset (p, 'x', 64);
    free (p);
    int *z = bctx_calloc (4, sizeof *z);
    assert_int_equal (z[3], 0);
    free (z);
}

static void
test_strings_free (void **state)
{
    (void) state;
    size_t n = 0, cap = 0;
    char **v = NULL;
    for (const char *w = "abc"; *w; w++) {
        bctx_grow ((void **) &v, &cap, n + 1, sizeof *v);
        v[n] = strndup (w, 1);
        assert_non_null (v[n]);
        n++;
    }
    assert_int_equal (n, 3);
    assert_string_equal (v[2], "c");
    bctx_strings_free (v, n);
    bctx_strings_free (NULL, 0);          /* nothing held: nothing to do */
}

/* An item with an owned name, freed by s_item_free. */
typedef struct {
    char *name;                   /* its name (new) */
    int *freed;                   /* counted up when it is freed (borrowed) */
} s_item_t;

static void
s_item_free (void *arg)
{
    s_item_t *item = arg;
    (*item->freed)++;
    free (item->name);
    free (item);
}

static void
test_items_free (void **state)
{
    (void) state;
    int freed = 0;
    size_t n = 0, cap = 0;
    s_item_t **v = NULL;
    for (const char *w = "abc"; *w; w++) {
        bctx_grow ((void **) &v, &cap, n + 1, sizeof *v);
        v[n] = bctx_calloc (1, sizeof *v[n]);
        *v[n] = (s_item_t) { strndup (w, 1), &freed };
        n++;
    }
    bctx_items_free (v, n, s_item_free);
    assert_int_equal (freed, 3);
    bctx_items_free (NULL, 0, s_item_free);   /* nothing held: nothing to do */
    assert_int_equal (freed, 3);
}

/* A destructor as every module writes it. */
static void
s_item_destroy (s_item_t **self_p)
{
    BCTX_SELF_OR_RETURN (s_item_t, self_p);
    s_item_free (self);
    *self_p = NULL;
}

static void
test_self_or_return (void **state)
{
    (void) state;
    int freed = 0;
    s_item_t *item = bctx_calloc (1, sizeof *item);
    *item = (s_item_t) { strdup ("x"), &freed };
    s_item_destroy (&item);
    assert_null (item);
    assert_int_equal (freed, 1);
    s_item_destroy (&item);               /* again: nothing to do */
    s_item_destroy (NULL);
    assert_int_equal (freed, 1);
}

static void
test_name_valid (void **state)
{
    (void) state;
    assert_true (bctx_name_valid ("inventory"));
    assert_true (bctx_name_valid ("A-z_09"));
    char long_name[66];
    memset (long_name, 'a', 65);
    long_name[65] = '\0';
    assert_false (bctx_name_valid (long_name));
    long_name[64] = '\0';
    assert_true (bctx_name_valid (long_name));
    assert_false (bctx_name_valid (""));
    assert_false (bctx_name_valid (NULL));
    assert_false (bctx_name_valid ("a b"));
    assert_false (bctx_name_valid ("../x"));
    assert_false (bctx_name_valid ("caf\xc3\xa9"));
}

static void
test_nearest (void **state)
{
    (void) state;
    const char *const words[] = { "name", "publish", "plugin", "plugin_dirs", "data", NULL };
    assert_string_equal (bctx_nearest ("pubish", words, 2), "publish");    /* delete */
    assert_string_equal (bctx_nearest ("nmae", words, 2), "name");         /* swap */
    assert_string_equal (bctx_nearest ("plugim", words, 2), "plugin");     /* replace */
    assert_string_equal (bctx_nearest ("plugin_dirss", words, 2), "plugin_dirs");
    assert_string_equal (bctx_nearest ("name", words, 2), "name");
    assert_null (bctx_nearest ("bogus", words, 2));
    assert_null (bctx_nearest ("pubsh", words, 1));                        /* two away */
    const char *const twins[] = { "data", "date", NULL };
    assert_null (bctx_nearest ("dat", twins, 2));                          /* a tie */
    assert_null (bctx_nearest ("x", NULL, 2));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_mkdirs_nested),
        cmocka_unit_test (test_mkdirs_file_in_the_way),
        cmocka_unit_test (test_now),
        cmocka_unit_test (test_grow),
        cmocka_unit_test (test_strings_free),
        cmocka_unit_test (test_items_free),
        cmocka_unit_test (test_self_or_return),
        cmocka_unit_test (test_name_valid),
        cmocka_unit_test (test_nearest),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
