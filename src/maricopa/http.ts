/** Request counts of the Assessor clients (the shared HTTP pieces are in src/core/http.ts). */

/** Counts HTTP requests by kind for a caller (each retry is a request). */
export interface RequestTally {
	bulk: number;
	detail: number;
}

export type RequestKind = keyof RequestTally;
