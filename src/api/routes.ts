/**
 * The REST surface of the api gateway: each path is an alias of a cluster action, so the API is a
 * thin door onto the same actions the REPL and other services call. More specific paths come first
 * (moleculer-web matches aliases in order).
 */
export const API_ALIASES: Readonly<Record<string, string>> = {
	"GET health": "api.health",
	"GET nodes": "$node.list",
	"GET services": "$node.services",

	// Canonical properties (store).
	"GET properties": "properties.find",
	"GET properties/stats": "properties.stats",
	"GET properties/:key/history": "properties.history",
	// Listing photos (photos service): the ordered list, and one photo's bytes streamed.
	"GET properties/:key/photos": "photos.list",
	"GET properties/:key/photos/:photoId": "photos.object",
	"GET properties/:key": "properties.get",
	"GET parcels/:apn": "properties.byApn",

	// Jobs (orchestrator) and schedules (scheduler).
	"POST jobs": "orchestrator.collect",
	"GET jobs": "orchestrator.list",
	"GET jobs/:id": "orchestrator.status",
	"POST jobs/:id/cancel": "orchestrator.cancel",
	"POST jobs/:id/retry": "orchestrator.retry",
	"GET schedules": "scheduler.list",
	"POST schedules/:name/trigger": "scheduler.trigger",
	"POST schedules/:name/pause": "scheduler.pause",
	"POST schedules/:name/resume": "scheduler.resume",

	// What the collectors see: proxies, browsers, and the politeness state of each site.
	"GET proxies": "proxy-pool.list",
	"GET proxies/stats": "proxy-pool.stats",
	"GET browsers": "browser-pool.stats",
	"GET hosts/maricopa": "maricopa.status",
	"GET hosts/mls": "mls.status",
	"GET hosts/llm": "llm.status",
	"GET hosts/photos": "photos.status",
	// Clear a fatal stop (a revoked token or key) once it is fixed.
	"POST hosts/maricopa/resume": "maricopa.resume",
	"POST hosts/mls/resume": "mls.resume",
	"POST hosts/llm/resume": "llm.resume",
	"GET llm/usage": "llm.usage",

	// Views composed by the api from the actions above (src/api/composed.ts, src/analytics/).
	"GET analytics/throughput": "api.throughput",
	"GET analytics/data-quality": "api.dataQuality",
	"GET system/queues": "api.queues",
	"GET system/nodes": "api.nodes",
	"GET system/browsers": "api.browsers",
};
