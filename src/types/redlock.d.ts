// redlock 4 (the line Moleculer's optional peer range names) ships no typings; this is the part we use.
declare module "redlock" {
	namespace Redlock {
		class Lock {
			resource: string;
			value: string;
			expiration: number;
			extend(ttl: number): Promise<Lock>;
			unlock(): Promise<void>;
		}
		class LockError extends Error {}
	}
	class Redlock {
		constructor(
			clients: unknown[],
			options?: { driftFactor?: number; retryCount?: number; retryDelay?: number; retryJitter?: number },
		);
		lock(resource: string, ttl: number): Promise<Redlock.Lock>;
		static LockError: typeof Redlock.LockError;
	}
	export = Redlock;
}
