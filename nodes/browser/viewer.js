// The page side of a cdnlab browser viewer: plays one MPD with dash.js and reports dash.js's
// own events, raw, to the driver (window.cdnlabReport, exposed by driver.mjs). Turning them
// into cdnlab's segment and session records is the Python side's job (nodes/browser/records.py).
// The configuration arrives as window.CDNLAB_CONFIG before this script runs.
//
// Content steering is dash.js's own (streaming.applyContentSteering, on by default): it asks
// the steering server, reorders the MPD's BaseURL@serviceLocation pathways, reports
// _DASH_pathway/_DASH_throughput. Each steering answer and each fragment's serviceLocation
// are reported. With config.cmsd, dash.js reads CMSD (streaming.cmsd.enabled, abr.applyMb:
// mb caps its bitrate); dash.js 5.2 does nothing with `du`, so this page adds what the Python
// player does (nodes/client/player.py): a media response whose CMSD-Dynamic says `du` puts
// its pathway on hold for AVOID_MS, and the next segment requests for it are sent to the
// first pathway in the steering priority that is not on hold (a request interceptor
// rewrites the BaseURL part of the URL).
(function () {
  "use strict";
  const config = window.CDNLAB_CONFIG;
  const report = (kind, fields) =>
    window.cdnlabReport(Object.assign({ kind: kind, wall: Date.now() / 1000 }, fields || {}));
  const video = document.getElementById("video");
  const player = dashjs.MediaPlayer().create();
  const events = dashjs.MediaPlayer.events;
  const limitS = config.segments ? config.segments * config.segment_s : null;
  let done = false;
  const AVOID_MS = 10000; // nodes/client/steering.py AVOID_S
  const pathwayBase = {}; // serviceLocation → its BaseURL, from the MPD
  let priority = []; // the last steering answer's PATHWAY-PRIORITY
  const heldUntil = {}; // pathway → until when (ms) it is passed over after a `du`
  const onHold = (pathway) => (heldUntil[pathway] || 0) > Date.now();
  const finish = (kind, fields) => {
    if (done) return;
    done = true;
    report(kind, fields);
    window.cdnlabDone = true;
  };

  player.updateSettings({
    debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING },
    streaming: {
      buffer: {
        bufferTimeDefault: config.max_buffer_s,
        bufferTimeAtTopQuality: config.max_buffer_s,
        bufferTimeAtTopQualityLongForm: config.max_buffer_s,
      },
      cmcd: {
        enabled: true, sid: config.session, cid: config.title, mode: "query",
        includeInRequests: ["segment", "mpd"],
      },
      applyContentSteering: true,
      cmsd: { enabled: !!config.cmsd, abr: { applyMb: !!config.cmsd, etpWeightRatio: 0 } },
    },
  });
  if (config.settings && Object.keys(config.settings).length) {
    player.updateSettings(config.settings); // a scenario's abr_params for dashjs
  }
  report("session_start", { version: player.getVersion() });

  player.on(events.MANIFEST_LOADED, (e) => {
    const bases = (e.data && e.data.BaseURL) || [];
    (Array.isArray(bases) ? bases : [bases]).forEach((b) => {
      const url = b.__text || b.url;
      if (b.serviceLocation && url) pathwayBase[b.serviceLocation] = url;
    });
  });
  player.on(events.CONTENT_STEERING_REQUEST_COMPLETED, (e) => {
    const data = e.currentSteeringResponseData || {};
    priority = data.pathwayPriority || priority;
    report("steering", { priority: priority, ttl: data.ttl || null, url: e.url });
  });
  if (config.cmsd) {
    player.addResponseInterceptor((response) => {
      const fragment = response.request && response.request.customData &&
        response.request.customData.request;
      const dynamic = (response.headers || {})["cmsd-dynamic"];
      if (fragment && fragment.type === "MediaSegment" && dynamic) {
        const nearest = dynamic.split(",").pop().split(";").slice(1).map((p) => p.trim());
        if (nearest.includes("du")) {
          const pathway = fragment.cdnlabPathway || fragment.serviceLocation;
          heldUntil[pathway] = Date.now() + AVOID_MS;
          report("cmsd_duress", { pathway: pathway, url: response.url });
        }
      }
      return Promise.resolve(response);
    });
    player.addRequestInterceptor((request) => {
      const fragment = request.customData && request.customData.request;
      const from = fragment && fragment.serviceLocation;
      if (fragment && fragment.type === "MediaSegment" && from && onHold(from) &&
          pathwayBase[from] && request.url.startsWith(pathwayBase[from])) {
        const order = priority.length ? priority : Object.keys(pathwayBase);
        const to = order.find((p) => p !== from && pathwayBase[p] && !onHold(p));
        if (to) {
          request.url = pathwayBase[to] + request.url.slice(pathwayBase[from].length);
          fragment.cdnlabPathway = to;
        }
      }
      return Promise.resolve(request);
    });
  }

  player.on(events.STREAM_INITIALIZED, () => {
    const ladder = (type) => player.getRepresentationsByType(type).map((r) => ({
      id: r.id, bandwidth: r.bandwidth, width: r.width || null, height: r.height || null,
    }));
    report("ladder", { video: ladder("video"), audio: ladder("audio") });
  });
  player.on(events.QUALITY_CHANGE_REQUESTED, (e) => {
    report("quality_requested", {
      media_type: e.mediaType, representation: e.newRepresentation && e.newRepresentation.id,
      rule: e.reason && e.reason.rule ? e.reason.rule : null,
    });
  });
  player.on(events.FRAGMENT_LOADING_COMPLETED, (e) => {
    const r = e.request;
    if (!r || r.type !== "MediaSegment") return;
    const time = (d) => (d ? new Date(d).getTime() / 1000 : null);
    report("fragment", {
      media_type: r.mediaType, index: r.index, url: r.url,
      service_location: r.serviceLocation || null, moved_to: r.cdnlabPathway || null,
      representation: r.representation ? r.representation.id : r.representationId,
      bytes: r.bytesLoaded, asked: time(r.startDate), first_byte: time(r.firstByteDate),
      done: time(r.endDate || r.requestEndDate),
      buffer_s: player.getBufferLength(r.mediaType),
      throughput_kbps: player.getAverageThroughput(r.mediaType),
    });
  });
  player.on(events.BUFFER_EMPTY, (e) => report("buffer_empty", { media_type: e.mediaType }));
  video.addEventListener("waiting", () => report("waiting", { position: video.currentTime }));
  video.addEventListener("playing", () => report("playing", { position: video.currentTime }));
  video.addEventListener("timeupdate", () => {
    if (limitS !== null && video.currentTime >= limitS) {
      finish("limit_reached", { position: video.currentTime });
    }
  });
  player.on(events.PLAYBACK_ENDED, () => finish("ended", { position: video.currentTime }));
  player.on(events.ERROR, (e) => {
    const error = e.error || {};
    finish("error", { code: error.code || null, message: error.message || String(error) });
  });
  player.initialize(video, config.mpd_url, true);
})();
