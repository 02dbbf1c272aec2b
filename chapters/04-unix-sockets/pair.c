/*
 * pair - a parent and its child talk through socketpair(): the parent sends each stdin
 * line to the child, the child answers "Hi, <line>", the parent prints the answer.
 * See README.md, "Contract".
 */
#include "common.h"

#include <signal.h>
#include <sys/wait.h>

/* The child: answer each line with "Hi, <line>\n" until the parent closes its end. */
static void child(int fd)
{
    /* TODO: read lines from fd (a line_reader), write "Hi, <line>\n" back for each.
     * read_line() returning 0 means the parent closed its end: leave with _exit(0)
     * (exit() would flush stdio buffers copied from the parent). */
    (void)fd;
    TODO("child: answer lines");
}

/* The parent: stdin lines to the child, its answers to stdout. */
static void parent(int fd)
{
    /* TODO: for each stdin line: send it (with '\n') to the child, read one answer
     * line, print it. */
    (void)fd;
    TODO("parent: forward lines");
}

int main(int argc, char **argv)
{
    if (argc != 1)
        fatal(0, "usage: %s", argv[0]);

    /* TODO: socketpair(AF_UNIX, SOCK_STREAM, 0, sv): two sockets already connected to
     * each other, no name, no file.  Then fork().  Each process keeps one end and
     * closes the other -- think about what the child would wait for if it kept both.
     * The parent prints "child <pid>", runs parent(), closes its end, waits for the
     * child and prints "child exited with status <n>". */
    (void)child;
    (void)parent;
    TODO("socketpair and fork");
}
