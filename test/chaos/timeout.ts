// A kind's chaos runs take tens of minutes: each kill inside an activity waits out its heartbeat timeout.
jest.setTimeout(3 * 60 * 60_000);
