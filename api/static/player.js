/* The stream player of Digital Human Factory: plays a streamed answer (HLS, fragmented MP4) in a <video>,
 * with its captions, and shows the stream's state as the server reports it.
 *
 * Why hls.js first and native HLS second: hls.js (vendored by scripts/setup, served by this server, never a
 * CDN) plays through Media Source Extensions in every current desktop browser and on Android; Safari on
 * iOS/iPadOS before 17.1 has no MSE but plays HLS itself (canPlayType says so).
 * Why startPosition 0: a streamed answer is live while it renders, and a live player starts near the
 * live edge; a viewer must hear the answer from its first word.
 * Why captions.vtt is polled only as a fallback: the HLS subtitles rendition (subs.m3u8) grows with the
 * video and both engines render it; a server or player without it still gets the captions.
 *
 * `window.dhfPlayer` holds what the page measured (milliseconds from `t0`, the moment the request was sent
 * or the page started loading): a test or a benchmark reads it; nothing leaves the browser.
 */
(function () {
  'use strict';

  var HLS_TYPE = 'application/vnd.apple.mpegurl';
  var STATE_POLL_MS = 400;
  var ENDED = { finished: true, fallback: true, failed: true };

  function metrics(t0) {
    return {
      t0: t0, engine: null, postedMs: null, manifestMs: null, firstFrameMs: null, playingMs: null,
      endedMs: null, mutedAutoplay: false, state: null, states: [], samples: [], errors: [],
      captionsSource: null, requestError: null, marks: {}
    };
  }

  function say(element, text, kind) {
    if (!element) { return; }
    element.textContent = text;
    element.dataset.kind = kind || 'info';
  }

  function describe(state) {
    if (!state) { return 'waiting for the stream…'; }
    var seconds = (state.released_seconds || 0).toFixed(1) + ' s released';
    switch (state.status) {
      case 'starting': return 'starting…';
      case 'streaming': return 'streaming (' + seconds + ')';
      case 'finished': return 'finished (' + seconds + ')';
      case 'fallback': return 'fallback (' + state.mode + '): ' + state.message;
      case 'failed': return 'failed: ' + state.message;
      default: return state.status;
    }
  }

  /* Parse the cues of a WebVTT file (the subset the server writes: timestamps and text). */
  function vttCues(text) {
    var cues = [];
    var blocks = text.replace(/\r/g, '').split(/\n\n+/);
    var stamp = /(?:(\d+):)?(\d\d):(\d\d)\.(\d\d\d)/;
    function seconds(s) {
      var m = stamp.exec(s);
      return (m[1] ? +m[1] * 3600 : 0) + (+m[2]) * 60 + (+m[3]) + (+m[4]) / 1000;
    }
    blocks.forEach(function (block) {
      var lines = block.split('\n');
      for (var i = 0; i < lines.length; i++) {
        if (lines[i].indexOf('-->') > 0) {
          var parts = lines[i].split('-->');
          cues.push([seconds(parts[0]), seconds(parts[1]), lines.slice(i + 1).join('\n')]);
          return;
        }
      }
    });
    return cues;
  }

  /* Play the stream whose files live next to `base` (master.m3u8, state.json, captions.vtt).
   * options: {t0, status (element), language, onState(state)} */
  function play(video, base, options) {
    options = options || {};
    var m = metrics(options.t0 === undefined ? 0 : options.t0);
    window.dhfPlayer = m;
    var master = new URL('master.m3u8', base).href;
    var stateUrl = new URL('state.json', base).href;
    var captionsUrl = new URL('captions.vtt', base).href;
    var hls = null;
    var stopped = false;
    var captionsTrack = null;
    var lastCaptions = -1;
    var retries = 0;

    function since() { return performance.now() - m.t0; }

    function firstFrame() {
      if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) {
        video.requestVideoFrameCallback(function (now) {
          if (m.firstFrameMs === null) { m.firstFrameMs = now - m.t0; }
        });
      }
    }

    function startPlaying() {
      var attempt = video.play();
      if (attempt && attempt.catch) {
        attempt.catch(function (error) {
          if (error && error.name === 'NotAllowedError' && !video.muted) {
            // autoplay with sound needs a user gesture (a page opened by a link): play muted at once,
            // and offer the sound
            video.muted = true;
            m.mutedAutoplay = true;
            offerSound();
            video.play().catch(function (e) { m.errors.push('play: ' + e.name); });
          } else if (error) {
            m.errors.push('play: ' + error.name);
          }
        });
      }
    }

    function offerSound() {
      var button = document.getElementById('unmute');
      if (!button) { return; }
      button.hidden = false;
      button.addEventListener('click', function () {
        video.muted = false;
        button.hidden = true;
        if (video.paused) { video.play(); }
      }, { once: true });
    }

    function pollCaptions() {
      if (stopped) { return; }
      fetch(captionsUrl, { cache: 'no-store' }).then(function (r) { return r.ok ? r.text() : ''; })
        .then(function (text) {
          var cues = vttCues(text);
          if (cues.length === lastCaptions) { return; }
          if (!captionsTrack) {
            captionsTrack = video.addTextTrack('captions', 'Captions', options.language || '');
            captionsTrack.mode = 'showing';
          }
          for (var i = Math.max(lastCaptions, 0); i < cues.length; i++) {
            captionsTrack.addCue(new VTTCue(cues[i][0], cues[i][1], cues[i][2]));
          }
          lastCaptions = cues.length;
        }).catch(function () { /* the next state poll tries again */ });
    }

    function pollState() {
      if (stopped) { return; }
      fetch(stateUrl, { cache: 'no-store' }).then(function (r) {
        if (!r.ok) { throw new Error('state: HTTP ' + r.status); }
        return r.json();
      }).then(function (state) {
        m.state = state;
        if (m.states[m.states.length - 1] !== state.status) { m.states.push(state.status); }
        m.samples.push({ at: since(), status: state.status, currentTime: video.currentTime });
        say(options.status, describe(state), state.status === 'failed' ? 'error'
          : state.status === 'fallback' ? 'warning' : 'info');
        if (options.onState) { options.onState(state); }
        if (m.captionsSource === 'captions.vtt') { pollCaptions(); }
        if (ENDED[state.status]) {
          if (m.captionsSource === 'captions.vtt') { setTimeout(pollCaptions, 0); }
          return;
        }
        setTimeout(pollState, STATE_POLL_MS);
      }).catch(function (error) {
        m.errors.push(String(error.message || error));
        setTimeout(pollState, STATE_POLL_MS * 2);
      });
    }

    video.addEventListener('playing', function () {
      if (m.playingMs === null) { m.playingMs = since(); }
    });
    video.addEventListener('ended', function () { m.endedMs = since(); });
    video.addEventListener('loadedmetadata', function () {
      if (m.engine === 'native' && video.currentTime > 0.1) {
        video.currentTime = 0;  // a native player joins a live playlist at its edge: the answer starts at 0
      }
      if (m.engine === 'native' && m.captionsSource === null) {
        m.captionsSource = video.textTracks.length ? 'hls' : 'captions.vtt';
        if (m.captionsSource === 'captions.vtt') { pollCaptions(); }
      }
    });

    if (window.Hls && window.Hls.isSupported()) {
      m.engine = 'hls.js';
      hls = new window.Hls({
        startPosition: 0,
        enableWorker: true,
        lowLatencyMode: false,
        backBufferLength: 30,
        manifestLoadPolicy: { default: { maxTimeToFirstByteMs: 15000, maxLoadTimeMs: 20000,
          timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
          errorRetry: { maxNumRetry: 2, retryDelayMs: 300, maxRetryDelayMs: 1000 } } },
        subtitleDisplay: true,
        renderTextTracksNatively: true
      });
      hls.on(window.Hls.Events.MANIFEST_PARSED, function (event, data) {
        m.manifestMs = since();
        // data.subtitleTracks: every rendition the master names (hls.subtitleTracks fills in later)
        m.captionsSource = data.subtitleTracks && data.subtitleTracks.length ? 'hls' : 'captions.vtt';
        if (m.captionsSource === 'captions.vtt') { pollCaptions(); }
        startPlaying();
      });
      // when each loading step first happened (ms from t0): where a slow first frame spends its time
      ['MANIFEST_LOADED', 'LEVEL_LOADED', 'FRAG_LOADING', 'FRAG_LOADED', 'FRAG_PARSED', 'FRAG_BUFFERED']
        .forEach(function (name) {
          hls.on(window.Hls.Events[name], function () {
            if (m.marks[name] === undefined) { m.marks[name] = since(); }
          });
        });
      hls.on(window.Hls.Events.SUBTITLE_TRACKS_UPDATED, function () {
        if (hls.subtitleTrack === -1 && hls.subtitleTracks.length) { hls.subtitleTrack = 0; }
      });
      hls.on(window.Hls.Events.ERROR, function (event, data) {
        m.errors.push(data.type + ': ' + data.details + (data.fatal ? ' (fatal)' : ''));
        if (!data.fatal) { return; }
        var loading = data.details === window.Hls.ErrorDetails.MANIFEST_LOAD_ERROR
          || data.details === window.Hls.ErrorDetails.MANIFEST_LOAD_TIMEOUT;
        if (loading && !(m.state && ENDED[m.state.status] && !m.state.released_segments) && retries < 20) {
          // nothing released yet when the page asked (the server holds the first request only a few
          // seconds): ask again, a player must not give up on an answer that is still rendering
          retries += 1;
          setTimeout(function () { if (!stopped) { hls.loadSource(master); } }, 500);
        } else if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR && retries < 20) {
          retries += 1;
          hls.recoverMediaError();
        } else if (!(m.state && m.state.status === 'failed')) {
          // (a failed stream's own one-line message, shown by the state poll, says more than the player)
          say(options.status, 'the player stopped: ' + data.details, 'error');
        }
      });
      hls.loadSource(master);
      hls.attachMedia(video);
      firstFrame();
    } else if (video.canPlayType(HLS_TYPE)) {
      m.engine = 'native';
      video.src = master;
      firstFrame();
      startPlaying();
    } else {
      m.engine = 'none';
      explainMissingPlayer(options.status, options.assets);
      return m;
    }
    pollState();
    m.stop = function () {
      stopped = true;
      if (hls) { hls.destroy(); }
    };
    return m;
  }

  /* No engine: hls.js did not load (the server answers its one-line reason) and the browser has no HLS. */
  function explainMissingPlayer(status, assets) {
    var url = new URL('hls.min.js', assets || document.baseURI).href;
    fetch(url).then(function (r) { return r.ok ? null : r.json(); }).then(function (body) {
      var reason = body && body.error ? body.error.message
        : 'this browser plays neither HLS nor Media Source Extensions';
      say(status, 'cannot play the stream: ' + reason, 'error');
    }).catch(function () { say(status, 'cannot play the stream: the HLS player did not load', 'error'); });
  }

  function assetsBase() {
    var script = document.currentScript;
    return script ? new URL('.', script.src).href : document.baseURI;
  }

  var assets = assetsBase();

  /* The stream page (/v1/streams/<id>/<token>/player): the stream's files are next to the page. */
  function streamPage() {
    var video = document.getElementById('video');
    return play(video, document.baseURI, {
      t0: 0, status: document.getElementById('status'), assets: assets,
      language: document.documentElement.lang
    });
  }

  /* The demo page (/player): a question is posted with an API key typed in (kept in this page's memory
   * only, sent in a header, never in a URL), then its answer plays here. */
  function demoPage() {
    var form = document.getElementById('ask');
    var status = document.getElementById('status');
    var link = document.getElementById('share');
    var video = document.getElementById('video');
    var current = null;
    document.getElementById('send').disabled = false;  // the form is only ever sent by this script
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (current && current.stop) { current.stop(); }
      var t0 = performance.now();
      window.dhfPlayer = current = metrics(t0);
      var body = {
        text: form.elements.text.value, language: form.elements.language.value,
        avatar_id: form.elements.avatar.value
      };
      if (form.elements.voice.value) { body.voice = form.elements.voice.value; }
      ['channel', 'purpose'].forEach(function (name) {
        if (form.elements[name] && form.elements[name].value) { body[name] = form.elements[name].value; }
      });
      say(status, 'asking…');
      link.hidden = true;
      fetch(new URL('v1/streams', document.baseURI).href, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-API-Key': form.elements.key.value },
        body: JSON.stringify(body)
      }).then(function (r) {
        return r.json().then(function (answer) { return { ok: r.ok, status: r.status, answer: answer }; });
      }).then(function (result) {
        var posted = performance.now() - t0;
        if (!result.ok) {
          var error = result.answer && result.answer.error ? result.answer.error.message : 'HTTP ' + result.status;
          current.postedMs = posted;
          current.requestError = result.status + ' ' + error;
          say(status, 'refused (' + result.status + '): ' + error, 'error');
          return;
        }
        var master = new URL(result.answer.playback.master, document.baseURI);
        current = play(video, new URL('.', master).href, {
          t0: t0, status: status, assets: assets, language: body.language
        });
        current.postedMs = posted;
        current.streamId = result.answer.stream_id;
        link.href = new URL(result.answer.playback.player, document.baseURI).href;
        link.hidden = false;
      }).catch(function (error) {
        current.requestError = String(error);
        say(status, 'the server did not answer: ' + error, 'error');
      });
    });
  }

  window.dhfStreamPlayer = { play: play, vttCues: vttCues };
  document.addEventListener('DOMContentLoaded', function () {
    if (document.body.dataset.page === 'stream') { streamPage(); }
    if (document.body.dataset.page === 'demo') { demoPage(); }
  });
})();
