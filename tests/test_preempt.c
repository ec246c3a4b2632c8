/* test_preempt.c: the pre-emption decision: a first signal lets the round
 * finish when the last round's wall time says it ends before the deadline
 * (or when there is no last round to go by), and abandons it when it
 * would not, when the deadline is 0, or on a second signal. */
#include <string.h>

#include "harness.h"
#include "preempt.h"

static void
test_decide(void)
{
	struct preempt p;
	memset(&p, 0, sizeof p);
	char why[160];
	/* The first round of a run: nothing to go by, the whole deadline. */
	CHECK_EQ_INT(preempt_decide(&p, 500, 60, why, sizeof why),
	             PREEMPT_FINISH_ROUND);
	/* Last round 100 s: 10 s in, 90 s to go, deadline 60: abandon. */
	p.last_round_s = 100;
	CHECK_EQ_INT(preempt_decide(&p, 10, 60, why, sizeof why),
	             PREEMPT_ABANDON);
	CHECK_STR_CONTAINS(why, "it needs about 90 s more");
	CHECK_STR_CONTAINS(why, "preempt.deadline_s is 60 s");
	/* 50 s in: 50 s to go, it fits. */
	CHECK_EQ_INT(preempt_decide(&p, 50, 60, why, sizeof why),
	             PREEMPT_FINISH_ROUND);
	/* Running past its estimate: it may end any moment. */
	CHECK_EQ_INT(preempt_decide(&p, 150, 60, why, sizeof why),
	             PREEMPT_FINISH_ROUND);
	/* No deadline at all. */
	CHECK_EQ_INT(preempt_decide(&p, 50, 0, why, sizeof why),
	             PREEMPT_ABANDON);
	CHECK_STR_CONTAINS(why, "preempt.deadline_s is 0");
	/* A second signal abandons whatever the timing. */
	p.requested = 1;
	CHECK_EQ_INT(preempt_decide(&p, 50, 60, why, sizeof why),
	             PREEMPT_ABANDON);
	CHECK_STR_CONTAINS(why, "a second pre-emption signal");
}

int
main(void)
{
	RUN(test_decide);
	return harness_finish();
}
