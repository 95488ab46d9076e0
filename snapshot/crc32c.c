/* snapshot/crc32c.c — CRC32C (Castagnoli), the checksum of image headers, metadata and pages.
 * CRC32C because x86-64 computes it in hardware (SSE4.2's crc32 instruction, ~8 bytes per 3
 * cycles on one stream): checking each page a restore reads costs little next to the read, and a
 * restorer without libc can compute it with the same instruction. A table fallback serves CPUs
 * without SSE4.2. */
#include "snapshot/image.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82f63b78u /* CRC32C, reflected */

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[i] = c;
	}
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t n)
{
	pthread_once(&table_once, table_init);
	while (n--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = crc;

	while (n && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		n--;
	}
	while (n >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		n -= 8;
	}
	while (n--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}

uint32_t em_snap_crc32c(uint32_t crc, const void *buf, size_t len)
{
	crc = ~crc;
	crc = __builtin_cpu_supports("sse4.2") ? crc_hw(crc, buf, len) : crc_sw(crc, buf, len);
	return ~crc;
}
