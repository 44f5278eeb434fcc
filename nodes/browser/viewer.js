// The page side of a cdnlab browser viewer: plays one MPD with dash.js and reports dash.js's
// own events, raw, to the driver (window.cdnlabReport, exposed by driver.mjs). Turning them
// into cdnlab's segment and session records is the Python side's job (nodes/browser/records.py).
// The configuration arrives as window.CDNLAB_CONFIG before this script runs.
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
    },
  });
  if (config.settings && Object.keys(config.settings).length) {
    player.updateSettings(config.settings); // a scenario's abr_params for dashjs
  }
  report("session_start", { version: player.getVersion() });

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
