/*
 * test_error.c - fatal/warning/TODO message formats and exit statuses (each
 * run in a child whose stdout and stderr we capture), and the line-buffered
 * stdout that program_init sets up before main().
 */
#include "testutil.h"

#include <stdio_ext.h>

static void fatal_with_errno(void *arg)
{
    (void)arg;
    fatal(ECONNREFUSED, "connect");
}

static void fatal_without_errno(void *arg)
{
    (void)arg;
    fatal(0, "usage: %s PORT", "server");
}

static void fatal_formatted(void *arg)
{
    (void)arg;
    fatal(EADDRINUSE, "bind %s:%d", "0.0.0.0", 8080);
}

static void fatal_unknown_errno(void *arg)
{
    (void)arg;
    fatal(9999, "odd");
}

static void fatal_long_message(void *arg)
{
    char text[3000];

    (void)arg;
    memset(text, 'x', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    fatal(EPIPE, "%s", text);
}

/* Both streams into one pipe: what was printed must come before the error. */
static void fatal_after_output(void *arg)
{
    (void)arg;
    if (dup2(1, 2) < 0)
        _exit(98);
    printf("line\n");
    printf("partial");          /* still in stdout's buffer */
    fatal(EPIPE, "write");
}

static void warning_then_go_on(void *arg)
{
    (void)arg;
    errno = 1234;
    warning(EPIPE, "write to %s", "peer");
    printf("errno %d\n", errno);
    errno = 4321;
    warning(0, "just so you know");
    printf("errno %d\n", errno);
}

/* warning's own stdio calls may fail and set errno: the caller's errno survives. */
static void warning_when_stdout_is_gone(void *arg)
{
    (void)arg;
    printf("unflushed");        /* so warning's fflush(stdout) has to write... */
    close(1);                   /* ...and fails with EBADF */
    errno = 1234;
    warning(0, "note");
    fprintf(stderr, "errno %d\n", errno);
    _exit(0);
}

static void todo_after_output(void *arg)
{
    (void)arg;
    printf("%d", __LINE__); TODO("write the accept loop");  /* same line on purpose */
}

/* With a line-buffered stdout a line is out even if the program never flushes. */
static void print_line_then_vanish(void *arg)
{
    (void)arg;
    printf("printed\n");
    _exit(0);                   /* skips stdio's flush at exit */
}

static void program_init_twice(void *arg)
{
    (void)arg;
    printf("first\n");
    program_init();
    printf("second\n");
    _exit(0);
}

#define EXPECT_CHILD(fn, exit_status, want_out, want_err)                       \
    do {                                                                        \
        struct child_result res_;                                               \
        run_child(fn, NULL, &res_);                                             \
        CHECK(WIFEXITED(res_.status));                                          \
        CHECK_INT(WEXITSTATUS(res_.status), ==, exit_status);                   \
        CHECK_STR(res_.out, want_out);                                          \
        CHECK_STR(res_.err, want_err);                                          \
    } while (0)

static void test_fatal_format(void)
{
    EXPECT_CHILD(fatal_with_errno, 1, "", "connect: Connection refused (111)\n");
    EXPECT_CHILD(fatal_without_errno, 1, "", "usage: server PORT\n");
    EXPECT_CHILD(fatal_formatted, 1, "", "bind 0.0.0.0:8080: Address already in use (98)\n");
    EXPECT_CHILD(fatal_unknown_errno, 1, "", "odd: Unknown error 9999 (9999)\n");
}

static void test_fatal_long_message(void)
{
    struct child_result res;

    run_child(fatal_long_message, NULL, &res);
    CHECK(WIFEXITED(res.status));
    CHECK_INT(WEXITSTATUS(res.status), ==, 1);
    /* Cut to fit fatal's buffer, but still a whole line with the reason. */
    size_t len = strlen(res.err);
    CHECK(len > 1000);
    CHECK(len < 3000);
    CHECK(len > 0 && res.err[len - 1] == '\n');
    CHECK(strstr(res.err, "xxx: Broken pipe (32)\n") != NULL);
}

static void test_fatal_flushes_stdout_first(void)
{
    EXPECT_CHILD(fatal_after_output, 1, "line\npartialwrite: Broken pipe (32)\n", "");
}

static void test_warning(void)
{
    EXPECT_CHILD(warning_then_go_on, 0, "errno 1234\nerrno 4321\n",
                 "write to peer: Broken pipe (32)\njust so you know\n");
    EXPECT_CHILD(warning_when_stdout_is_gone, 0, "", "note\nerrno 1234\n");
}

static void test_todo(void)
{
    struct child_result res;
    char want[4096];

    run_child(todo_after_output, NULL, &res);
    CHECK(WIFEXITED(res.status));
    CHECK_INT(WEXITSTATUS(res.status), ==, TODO_EXIT_STATUS);
    CHECK_INT(TODO_EXIT_STATUS, ==, 3);
    /* stdout holds the line number of the TODO (flushed before exiting). */
    snprintf(want, sizeof(want), "TODO not done: write the accept loop (%s:%.16s)\n",
             __FILE__, res.out);
    CHECK(res.out[0] != '\0');
    CHECK_STR(res.err, want);
}

static void test_stdout_is_line_buffered(void)
{
    CHECK(__flbf(stdout) != 0);                 /* program_init ran before main */
    EXPECT_CHILD(print_line_then_vanish, 0, "printed\n", "");
    EXPECT_CHILD(program_init_twice, 0, "first\nsecond\n", "");
}

int main(void)
{
    watchdog_start(5);

    RUN(test_stdout_is_line_buffered);
    RUN(test_fatal_format);
    RUN(test_fatal_long_message);
    RUN(test_fatal_flushes_stdout_first);
    RUN(test_warning);
    RUN(test_todo);
    return check_exit_status();
}
