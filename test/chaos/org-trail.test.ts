/** org-trail under worker kills (test/chaos/chaos.ts). */
import { chaosSuite } from './chaos';

chaosSuite('org-trail');
