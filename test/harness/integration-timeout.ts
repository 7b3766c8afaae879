// Integration tests wait on real servers, soaks and approval windows measured in seconds.
jest.setTimeout(180_000);
