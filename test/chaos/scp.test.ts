/** scp under worker kills (test/chaos/chaos.ts). */
import { chaosSuite } from './chaos';

chaosSuite('scp');
