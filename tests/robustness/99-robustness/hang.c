/* Never exits and never prints. */
#include <unistd.h>
int main(void)
{
    for (;;)
        pause();
}
