/* Dies by SIGSEGV after printing a line. */
#include <stdio.h>
#include <signal.h>
int main(void)
{
    puts("about to crash");
    fflush(stdout);
    raise(SIGSEGV);
    return 0;
}
