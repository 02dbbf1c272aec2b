/*
 * unixlab.h - helpers shared by the four programs of chapter 04 (Unix domain sockets).
 *
 * A NAME on the command line is either
 *   a filesystem path   "/tmp/echo.sock", "echo.sock"   (a socket file appears there), or
 *   an abstract name    "@echo"                         (no file: the name lives in the
 *                                                        kernel, per network namespace).
 */
#ifndef UNIXLAB_H
#define UNIXLAB_H

#include <sys/socket.h>
#include <sys/un.h>

/* 1 if name is "@something" (an abstract address), else 0. */
int is_abstract(const char *name);

/*
 * unix_address - fill *sa for NAME and return the length to pass to bind/connect/sendto.
 * A path that does not fit in sun_path (108 bytes with its NUL) ends the program with
 *     "name too long: '<name>' (at most 107 bytes)"
 * rather than being cut short silently.
 */
socklen_t unix_address(struct sockaddr_un *sa, const char *name);

/*
 * remove_stale_socket - make PATH free for bind().  A socket file left there by a
 * program that died is removed; a path that does not exist is fine; anything else
 * (a regular file, a directory...) is never removed: the program ends with
 *     "refusing to remove '<path>': not a socket"
 * Does nothing for an abstract name.
 */
void remove_stale_socket(const char *name);

/*
 * remove_on_exit - from now on, make sure NAME's socket file is removed when the
 * program ends: by returning from main, by exit() (so by fatal() too), or by SIGINT
 * or SIGTERM (after which the program exits with status 0).  Call it right after
 * a successful bind().  Does nothing but install the signal handlers for an
 * abstract name.
 */
void remove_on_exit(const char *name);

#endif /* UNIXLAB_H */
