/*
 * unixlab.c - Unix domain addresses, stale socket files, and cleanup at exit.
 * Shared by the four programs of this chapter; see unixlab.h for each contract.
 */
#include "common.h"
#include "unixlab.h"

#include <signal.h>
#include <sys/stat.h>

int is_abstract(const char *name)
{
    return name[0] == '@' && name[1] != '\0';
}

socklen_t unix_address(struct sockaddr_un *sa, const char *name)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    /* TODO: refuse a name that does not fit in sun_path (the NUL of a path needs a byte
     * too): fatal(0, "name too long: ...").  Never cut it: a shortened path is a
     * different file.
     *   - a path: copy it into sun_path; the length to return is
     *     offsetof(struct sockaddr_un, sun_path) + strlen + 1 (the NUL);
     *   - "@name": sun_path[0] stays '\0' and the name follows it.  An abstract name is
     *     not NUL-terminated: the length you return is what delimits it, so count
     *     only the bytes you used. */
    TODO("unix_address: fill sun_path and return the length");
}

void remove_stale_socket(const char *name)
{
    if (is_abstract(name))
        return;
    /* TODO: bind() fails with EADDRINUSE if anything exists at the path, even the
     * socket file of a server that died.  lstat() the path: nothing there is fine; a
     * socket file is stale, unlink() it; anything else belongs to someone, so stop with
     *     fatal(0, "refusing to remove '%s': not a socket", name);          */
    TODO("remove_stale_socket: lstat, S_ISSOCK, unlink");
}

void remove_on_exit(const char *name)
{
    /* TODO: nothing removes a socket file when its program ends: we must.
     *   - remember the path (copy it into a static buffer) unless it is abstract;
     *   - atexit(): covers returning from main and every exit() (fatal() included);
     *   - sigaction() for SIGINT and SIGTERM: a handler may only call
     *     async-signal-safe functions, and unlink() and _exit() are.  Exit 0 there.
     * (A handler that only sets a flag also works, if every blocking call then fails
     * with EINTR: see the README, "Cleaning up on a signal".) */
    TODO("remove_on_exit: atexit and SIGINT/SIGTERM handlers that unlink the path");
}
