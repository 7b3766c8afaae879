import { rmSync } from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  await globalThis.__COUNTERSIGN_TEMPORAL__?.stop();
  if (process.env.COUNTERSIGN_TEST_TMP) rmSync(process.env.COUNTERSIGN_TEST_TMP, { recursive: true, force: true });
}
