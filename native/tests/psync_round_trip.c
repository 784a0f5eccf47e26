/* SPDX-License-Identifier: MIT */
/*
 * Description: the psync engine passes the same round trip as io_uring (see uring_round_trip.c):
 * pread/pwrite/pwritev2(RWF_DSYNC)/fdatasync on the submitting thread, completions queued for
 * the reaper.
 */
#include "helpers.h"

int main(void)
{
	return t_ring_round_trip(EMU_ENGINE_PSYNC);
}
