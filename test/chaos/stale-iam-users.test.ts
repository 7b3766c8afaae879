/** stale-iam-users under worker kills (test/chaos/chaos.ts). */
import { chaosSuite } from './chaos';

chaosSuite('stale-iam-users');
