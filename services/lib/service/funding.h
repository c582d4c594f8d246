/* taskd's funding sweep: drafts open when the escrow's Funded logs name
 * them. The logs are read from the block after the last one read (a
 * cursor per escrow in the database), so a draft funded late opens
 * within a sweep however many drafts wait, unfunded, before it. */
#ifndef FM_SERVICE_FUNDING_H
#define FM_SERVICE_FUNDING_H

#include "service/svc.h"

/* Reads the Funded logs of the blocks since the cursor (a bounded
 * number of blocks per call) and opens each draft they name whose
 * funding agrees with it; *opened counts them. The first call on an
 * escrow checks every draft once instead and starts the cursor at the
 * chain's head. */
int funding_sweep(struct svc *s, int *opened);

/* Opens draft task_id when the escrow holds its funding: *opened is 1
 * then. A task that is not a draft, or whose funding disagrees with it
 * (logged), is left as it is. */
int funding_open_draft(struct svc *s, const char *task_id, int *opened);

#endif
