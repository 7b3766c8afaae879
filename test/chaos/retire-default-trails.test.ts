/** retire-default-trails under worker kills (test/chaos/chaos.ts). */
import { chaosSuite } from './chaos';

chaosSuite('retire-default-trails');
