/* commit.lua's arguments are declared once (commit_proto.h): the preamble
 * bt_commit_script puts before the script names every position the C side
 * uses, and the script uses no name the preamble does not declare. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "commit_proto.h"
#include "lua_scripts.h"

static const char *script(void)
{
    const char *s = bt_commit_script();

    cr_assert_not_null(s);
    return s;
}

static void expect_line(const char *line)
{
    cr_expect(strstr(script(), line), "the preamble lacks \"%s\"", line);
}

Test(commit_proto, the_preamble_gives_each_position_its_lua_name)
{
    char line[128];

    expect_line("local K_META = 1\n");
    expect_line("local K_TIMERS = 6\n");
    cr_expect_eq(BT_CK__FIXED, 6);
    expect_line("local A_VER = 1\n");
    expect_line("local A_KTS = 9\n");
    cr_expect_eq(BT_CA__FIXED, 9);
    expect_line("local S_META = 1\n");
    expect_line("local S_RUNS_ENDED = 7\n");
    snprintf(line, sizeof(line), "local A__SECTIONS = %d\n", BT_CA__FIXED + 1);
    expect_line(line);
    expect_line("local WIDTH = {2, 2, 1, 2, 2, 1, 2}\n");
    cr_expect_eq(bt_commit_section_width[BT_CS_HISTORY], 1);
}

Test(commit_proto, the_script_follows_its_preamble_and_is_built_once)
{
    const char *s = script();
    size_t n = strlen(bt_lua_commit);

    cr_expect_eq(s, bt_commit_script(), "one text: bt_redis names scripts by address");
    cr_expect_str_eq(s + strlen(s) - n, bt_lua_commit);
}

/* Every K_, A_ and S_ name the script uses is one the preamble declares. */
Test(commit_proto, the_script_uses_only_declared_names)
{
    const char *s = script(), *body = s + strlen(s) - strlen(bt_lua_commit);

    for (const char *p = body; *p; p++) {
        char name[64], decl[80];
        size_t len = 0;
        if ((p[0] != 'K' && p[0] != 'A' && p[0] != 'S') || p[1] != '_' ||
            (p > body && (isalnum((unsigned char)p[-1]) || p[-1] == '_')))
            continue;
        while (len < sizeof(name) - 1 &&
               (isalnum((unsigned char)p[len]) || p[len] == '_')) {
            name[len] = p[len];
            len++;
        }
        name[len] = '\0';
        snprintf(decl, sizeof(decl), "local %s = ", name);
        cr_expect(strstr(s, decl) && strstr(s, decl) < body, "%s is not declared", name);
        p += len - 1;
    }
}
