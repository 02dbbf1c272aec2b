/* Leaves a child in a new session holding a listening port, then exits 0.
 * The grader must still find and kill that child. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1))
        return 1;
    if (fork() == 0) {
        setsid();
        if (fork() == 0) {
            for (;;)
                pause();
        }
        _exit(0);
    }
    puts("left a child behind");
    return 0;
}
