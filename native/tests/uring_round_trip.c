/* SPDX-License-Identifier: MIT */
/*
 * Description: the io_uring engine writes (plain and FUA), flushes, NOPs and reads back blocks of
 * an O_DIRECT file in batches, reports errors in res, fills up at one SQ per call and a CQ of
 * unreaped I/Os, times out with -ETIME, and serves a submitter and a reaper thread at once.
 * Skips when io_uring_setup(2) is refused.
 */
#include "helpers.h"

int main(void)
{
	return t_ring_round_trip(EMU_ENGINE_IO_URING);
}
