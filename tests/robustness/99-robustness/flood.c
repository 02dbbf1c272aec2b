/* Prints forever: the grader must cut it off and say so. */
#include <stdio.h>
int main(void)
{
    for (;;)
        puts("spam spam spam spam spam spam spam spam spam spam spam spam spam spam spam");
}
