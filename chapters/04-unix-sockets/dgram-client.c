/*
 * dgram-client SERVER CLIENT - bind our own address CLIENT (so the server can answer),
 * send each stdin line as one datagram to SERVER, print each reply; at the end of
 * stdin remove CLIENT's socket file and exit 0.  See README.md, "Contract".
 */
#include "common.h"
#include "unixlab.h"

#define MAX_DATAGRAM 2048

int main(int argc, char **argv)
{
    if (argc != 3)
        fatal(0, "usage: %s SERVER CLIENT", argv[0]);

    struct sockaddr_un server, me;
    socklen_t server_len = unix_address(&server, argv[1]);
    socklen_t me_len = unix_address(&me, argv[2]);

    /* TODO: a SOCK_DGRAM Unix socket bound to CLIENT (stale file removed first,
     * removed again at exit).  Why bind at all?  A Unix datagram socket that is not
     * bound has no address, so the server would have nowhere to send its reply. */
    (void)me_len;
    TODO("socket and bind CLIENT");

    /* TODO: for each stdin line, without its '\n': sendto() SERVER (on failure
     * fatal(errno, "sendto")), recv() the reply datagram, print it on its own line. */
    (void)server_len;
    return 0;
}
