/* The README's C is real: every ```c block of README.md and docs/ is
 * compiled against this build installed into a temporary prefix, the way the
 * README's "Build a plugin out of tree" section says (cc with pkg-config,
 * -Wl,--no-undefined, -Wall -Wextra -Werror), and the README's SDK example,
 * its block that defines baton_register, is loaded by the installed worker
 * and its workflow run to completion. Compiler messages point at the
 * markdown's lines (#line).
 *
 * A block with a main() is a program (docs/testing.md's, on the test kit):
 * linked against the installed libbaton and run with the paths of the
 * examples' plugins as its arguments; it must exit 0.
 *
 * A block without baton_register or main is a fragment of a workflow or of a
 * registration: it is compiled as the body of a function that has the names
 * such fragments use, a workflow's wf, a registry r, an activity function
 * submit, a json_t *brand, a const char *key and a const json_t *out, and
 * may leave its own variables unused. */
#include <criterion/criterion.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "install.h"
#include "stack.h"

#define MAX_BLOCKS 32

struct block {
    char file[64]; /* "README.md", "docs/x.md" */
    int line;      /* the file's line of the block's first line of code */
    char *text;
    size_t len;
};

static const char fragment_head[] =
    "#include <baton.h>\n"
    "__attribute__((unused)) static int submit(bt_act *act, const json_t *input,\n"
    "                                          json_t **result)\n"
    "{\n"
    "    (void)act;\n"
    "    (void)input;\n"
    "    *result = NULL;\n"
    "    return 0;\n"
    "}\n"
    "bt_poll readme_fragment(bt_wf *wf, bt_registry *r, json_t *brand, const char "
    "*key);\n"
    "bt_poll readme_fragment(bt_wf *wf, bt_registry *r, json_t *brand, const char *key)\n"
    "{\n"
    "    const json_t *out = NULL;\n"
    "    (void)r, (void)brand, (void)key, (void)out;\n";
static const char fragment_tail[] = "\n    return bt_complete(wf, NULL);\n}\n";

static struct bt_stack stack;
static char prefix[320], work[320], blog[320];
static struct block blocks[MAX_BLOCKS];
static int n_blocks;

static void setup(void)
{
    char tail[4096];

    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
    snprintf(prefix, sizeof(prefix), "%s/prefix", stack.redis.dir);
    snprintf(work, sizeof(work), "%s/readme", stack.redis.dir);
    snprintf(blog, sizeof(blog), "%s/build.log", stack.redis.dir);
    cr_assert_eq(bt_test_install(prefix, blog), 0, "cmake --install failed:\n%s",
                 bt_test_tail(blog, tail, sizeof(tail)));
    cr_assert_eq(bt_test_sh(blog, 10000, "mkdir -p '%s'", work), 0);
}

static void teardown(void)
{
    for (int i = 0; i < n_blocks; i++)
        free(blocks[i].text);
    bt_stack_stop(&stack);
}

/* Whether line is a code fence, after any indentation, with this info string
 * ("" for the closing one). */
static bool fence(const char *line, const char *info)
{
    size_t n = strlen(info);

    line += strspn(line, " ");
    return !strncmp(line, "```", 3) && !strncmp(line + 3, info, n) &&
           (line[3 + n] == '\n' || line[3 + n] == '\0');
}

/* Appends the ```c blocks of file (relative to the source tree) to blocks[]. */
static void read_blocks(const char *file)
{
    char path[512], line[4096];
    FILE *f, *mem = NULL;
    int lineno = 0;

    snprintf(path, sizeof(path), "%s/%s", BT_SOURCE_DIR, file);
    f = fopen(path, "r");
    cr_assert_not_null(f, "cannot read %s", path);
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (mem && fence(line, "")) {
            fclose(mem);
            mem = NULL;
            n_blocks++;
        } else if (mem) {
            fputs(line, mem);
        } else if (fence(line, "c")) {
            cr_assert_lt(n_blocks, MAX_BLOCKS, "more than %d C blocks", MAX_BLOCKS);
            snprintf(blocks[n_blocks].file, sizeof(blocks[0].file), "%s", file);
            blocks[n_blocks].line = lineno + 1;
            mem = open_memstream(&blocks[n_blocks].text, &blocks[n_blocks].len);
            cr_assert_not_null(mem);
        }
    }
    fclose(f);
    cr_assert_null(mem, "%s: the C block of line %d is not closed", file,
                   blocks[n_blocks].line);
}

static bool is_plugin(const struct block *b)
{
    return strstr(b->text, "baton_register") != NULL;
}

static bool is_program(const struct block *b)
{
    return strstr(b->text, "int main(") != NULL;
}

/* Compiles program block i against the installed library and runs it on the
 * examples' plugins. */
static void run_program(int i)
{
    const struct block *b = &blocks[i];
    char src[400], exe[400], tail[4096];
    FILE *f;

    snprintf(src, sizeof(src), "%s/program_%d.c", work, i);
    snprintf(exe, sizeof(exe), "%s/program_%d", work, i);
    f = fopen(src, "w");
    cr_assert_not_null(f);
    fprintf(f, "#line %d \"%s\"\n%s", b->line, b->file, b->text);
    fclose(f);
    cr_assert_eq(
        bt_test_sh(blog, 60000,
                   "export PKG_CONFIG_PATH='%s/lib/pkgconfig'; cc -std=c11 -Wall "
                   "-Wextra -Werror %s $(pkg-config --cflags baton) -o '%s' '%s' "
                   "$(pkg-config --libs baton)",
                   prefix, BT_PROGRAM_CFLAGS, exe, src),
        0, "the C program of %s:%d does not compile:\n%s", b->file, b->line,
        bt_test_tail(blog, tail, sizeof(tail)));
    cr_assert_eq(bt_test_sh(blog, 60000,
                            "LD_LIBRARY_PATH='%s/lib' '%s' '%s/registration.so' "
                            "'%s/campaigns.so'",
                            prefix, exe, BT_PLUGIN_DIR, BT_PLUGIN_DIR),
                 0, "the C program of %s:%d failed:\n%s", b->file, b->line,
                 bt_test_tail(blog, tail, sizeof(tail)));
}

/* Compiles block i into <work>/block_<i>.so; returns its path in so. */
static void compile(int i, char *so, size_t n)
{
    const struct block *b = &blocks[i];
    char src[400], tail[4096];
    FILE *f;

    snprintf(src, sizeof(src), "%s/block_%d.c", work, i);
    snprintf(so, n, "%s/block_%d.so", work, i);
    f = fopen(src, "w");
    cr_assert_not_null(f);
    fprintf(f, "%s#line %d \"%s\"\n%s%s", is_plugin(b) ? "" : fragment_head, b->line,
            b->file, b->text, is_plugin(b) ? "" : fragment_tail);
    fclose(f);
    cr_assert_eq(
        bt_test_sh(blog, 60000,
                   "export PKG_CONFIG_PATH='%s/lib/pkgconfig'; cc -std=c11 -Wall -Wextra "
                   "-Werror %s -fPIC -shared -Wl,--no-undefined "
                   "$(pkg-config --cflags baton) -o '%s' '%s' "
                   "$(pkg-config --libs baton)",
                   prefix, is_plugin(b) ? "" : "-Wno-unused-variable", so, src),
        0, "the C block of %s:%d does not compile:\n%s", b->file, b->line,
        bt_test_tail(blog, tail, sizeof(tail)));
}

/* Runs the SDK example's workflow "registration" on the installed worker. */
static void run_example(const char *plugin)
{
    char bin[400], cli[400], out[400], text[4096];
    pid_t worker;
    int status;

    snprintf(bin, sizeof(bin), "%s/bin/baton-worker", prefix);
    snprintf(cli, sizeof(cli), "%s/bin/baton", prefix);
    snprintf(out, sizeof(out), "%s/start.out", work);
    worker = bt_test_spawn((const char *const[]){bin, "--plugin", plugin, NULL},
                           stack.envp, stack.log);
    cr_assert_gt(worker, 0);
    status = bt_test_wait(
        bt_test_spawn((const char *const[]){cli, "start", "registration", "--id",
                                            "readme-1", "--input", "{\"brand\":\"acme\"}",
                                            "--wait", "--timeout", "60", NULL},
                      stack.envp, out),
        90000);
    bt_test_tail(out, text, sizeof(text));
    cr_assert_eq(status, 0, "the README's workflow did not complete (%d): %s\n%s", status,
                 text, bt_test_tail(stack.log, (char[4096]){0}, 4096));
    cr_assert(strstr(text, "\"campaign\""), "%s", text);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0, "the worker exited non-zero");
}

Test(readme, every_c_block_compiles_and_the_sdk_example_completes_its_workflow,
     .init = setup, .fini = teardown, .timeout = 180)
{
    char so[400], example[400] = "", pattern[400];
    int plugins = 0;
    glob_t docs;

    read_blocks("README.md");
    cr_assert_geq(n_blocks, 3, "README.md has %d C blocks: is the parser broken?",
                  n_blocks);
    snprintf(pattern, sizeof(pattern), "%s/docs/*.md", BT_SOURCE_DIR);
    if (glob(pattern, 0, NULL, &docs) == 0) {
        for (size_t i = 0; i < docs.gl_pathc; i++)
            read_blocks(docs.gl_pathv[i] + strlen(BT_SOURCE_DIR) + 1);
        globfree(&docs);
    }
    for (int i = 0; i < n_blocks; i++) {
        if (is_program(&blocks[i])) {
            run_program(i);
            continue;
        }
        compile(i, so, sizeof(so));
        if (!strcmp(blocks[i].file, "README.md") && is_plugin(&blocks[i]) &&
            plugins++ == 0)
            snprintf(example, sizeof(example), "%s", so);
    }
    cr_assert_eq(plugins, 1, "README.md has %d whole plugins; this test runs one",
                 plugins);
    run_example(example);
}
