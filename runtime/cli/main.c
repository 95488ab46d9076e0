/* runtime/cli/main.c — the ember command line (placeholder while the runtime lands). */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "ember: not built yet\n");
	return 1;
}
