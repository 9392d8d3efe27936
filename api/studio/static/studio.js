// Digital Human Factory Studio: the little the pages do in the browser. No framework, no inline
// script (the CSP allows only this file); every page works without it, this only makes it live:
// New video (character count, the render's checks as you type, licence-scoped selects, voice sample,
// scene preview) and the jobs pages (progress pushed by Server-Sent Events).
"use strict";

(function () {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function debounce(fn, ms) {
    let timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => node.setAttribute(key, value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- New video ----------------------------------------------------------------------------------
  function newVideo(form) {
    const text = form.querySelector("#text");
    const count = form.querySelector("#char-count");
    const file = form.querySelector("#script");
    const checks = form.querySelector("#checks");
    const voice = form.querySelector("#voice");
    const play = form.querySelector("#voice-play");
    const audio = form.querySelector("#voice-audio");
    const voiceStatus = form.querySelector("#voice-status");
    const scene = form.querySelector("#scene");
    const channel = form.querySelector("#channel");
    const purpose = form.querySelector("#purpose");
    const preview = form.querySelector("#scene-preview");
    const max = Number(count.dataset.max);

    const chosenAvatar = () => form.querySelector('input[name="avatar_id"]:checked');
    const languages = () => Array.from(form.querySelectorAll('input[name="language"]:checked')).map((box) => box.value);

    function updateCount() {
      const n = text.value.length;
      count.textContent = `${n} of ${max} characters`;
      count.classList.toggle("error", n > max);
    }

    function draft() {
      const avatar = chosenAvatar();
      return {
        text: text.value,
        avatar_id: avatar ? avatar.value : "",
        languages: languages(),
        voice: voice.value,
        scene: scene.value,
        channel: channel.value,
        purpose: purpose.value,
      };
    }

    function showChecks(result) {
      checks.replaceChildren();
      (result.problems || []).forEach((problem) => checks.append(el("p", { class: "error" }, problem)));
      const list = el("ul", { class: "check-list" });
      (result.languages || []).forEach((lang) => {
        const item = el("li", { "data-language": lang.language, "data-valid": String(lang.valid) });
        if (lang.valid) {
          item.append(el("span", { class: "ok" }, `${lang.language}: ready`));
          item.append(document.createTextNode(
            ` (voice ${lang.voice}, ${lang.spoken_characters} characters spoken` +
            `${lang.scene ? ", scene " + lang.scene : ""}, licence ${lang.license_id})`));
        } else {
          item.append(el("span", { class: "error" }, `${lang.language}: ${lang.error}`));
        }
        list.append(item);
      });
      checks.append(list);
      checks.dataset.valid = String(Boolean(result.valid));
    }

    let sequence = 0;
    async function runChecks() {
      const mine = ++sequence;
      const body = draft();
      if (!body.text.trim()) {
        checks.replaceChildren(el("p", { class: "help" }, "Write the script to check it."));
        checks.dataset.valid = "false";
        return;
      }
      try {
        const response = await fetch(form.dataset.checkUrl, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
          body: JSON.stringify(body),
        });
        if (mine !== sequence) return; // a newer check is under way
        if ((response.headers.get("content-type") || "").startsWith("application/json")) {
          showChecks(await response.json());
        } else {
          checks.replaceChildren(el("p", { class: "error" }, `The check failed (HTTP ${response.status}); reload the page.`));
        }
      } catch (error) {
        if (mine === sequence) checks.replaceChildren(el("p", { class: "error" }, `The check failed: ${error}`));
      }
    }
    const checkSoon = debounce(runChecks, 350);

    function fillSelect(select, values) {
      const keep = select.value;
      select.replaceChildren(...values.map((value) => el("option", { value: value }, value)));
      if (values.includes(keep)) select.value = keep;
    }

    function avatarChanged() {
      const avatar = chosenAvatar();
      if (!avatar) return;
      fillSelect(channel, avatar.dataset.channels ? avatar.dataset.channels.split(",") : []);
      fillSelect(purpose, avatar.dataset.purposes ? avatar.dataset.purposes.split(",") : []);
      updatePreview();
    }

    function updatePreview() {
      const avatar = chosenAvatar();
      if (!avatar || !preview) return;
      const query = new URLSearchParams({ avatar: avatar.value, scene: scene.value, channel: channel.value });
      const src = `/studio/scene-preview.png?${query}`;
      if (preview.getAttribute("src") !== src) {
        preview.setAttribute("aria-busy", "true");
        preview.src = src;
      }
    }
    preview && preview.addEventListener("load", () => preview.removeAttribute("aria-busy"));

    voice.addEventListener("change", () => {
      play.disabled = !voice.value;
      const option = voice.selectedOptions[0];
      const language = option && option.dataset.language;
      if (language) {
        const box = form.querySelector(`#language-${language}`);
        if (box && !box.checked) box.checked = true; // the voice's language is then one of the videos
      }
      checkSoon();
    });
    play.addEventListener("click", () => {
      if (!voice.value) return;
      voiceStatus.textContent = `Preparing a sample of ${voice.value}…`;
      audio.hidden = false;
      audio.src = `/studio/voices/${encodeURIComponent(voice.value)}/sample.wav`;
      audio.play().then(
        () => { voiceStatus.textContent = `Playing a sample of ${voice.value}.`; },
        (error) => { voiceStatus.textContent = `The sample could not play: ${error.message}`; });
    });
    audio.addEventListener("error", () => { voiceStatus.textContent = "The sample could not be made; see the checks."; });

    file.addEventListener("change", () => {
      const chosen = file.files && file.files[0];
      if (!chosen) return;
      chosen.text().then((content) => {
        text.value = content.replace(/^\uFEFF/, "");
        file.value = ""; // the text now holds it: sent once, not twice (the server's body limit)
        updateCount();
        checkSoon();
      });
    });
    text.addEventListener("input", () => { updateCount(); checkSoon(); });
    form.addEventListener("change", (event) => {
      if (event.target.name === "avatar_id") avatarChanged();
      if (event.target === scene || event.target === channel) updatePreview();
      if (event.target !== file && event.target !== voice) checkSoon();
    });
    form.addEventListener("submit", () => {
      const button = form.querySelector("#submit-video");
      button.disabled = true; // one submit: a double click must not queue every language twice
      button.textContent = "Submitting…";
    });
    updateCount();
    if (text.value) runChecks();
  }

  // --- Jobs: live progress by Server-Sent Events ---------------------------------------------------
  function liveJobs(container) {
    const url = container.dataset.events;
    if (!url || !window.EventSource || /ids=$/.test(url)) return; // nothing active to follow
    const live = document.getElementById("jobs-live");
    const source = new EventSource(url);
    source.addEventListener("job", (event) => {
      const state = JSON.parse(event.data);
      const rows = document.querySelectorAll(`[data-job-id="${state.id}"]`);
      rows.forEach((row) => {
        const field = (name) => row.querySelector(`[data-field="${name}"]`);
        const status = field("status");
        if (status) {
          status.textContent = state.status;
          status.className = `badge status-${state.status}`;
        }
        const stage = field("stage");
        if (stage && stage.textContent !== state.stage) {
          stage.textContent = state.stage;
          if (live) live.textContent = `Job ${state.id.slice(0, 8)}: ${state.stage}`;
        }
        const progress = field("progress");
        if (progress) {
          progress.value = state.progress;
          progress.textContent = `${Math.round(state.progress * 100)} %`;
        }
        const frames = field("frames");
        if (frames) frames.textContent = state.frames_total ? `${state.frames_done} / ${state.frames_total} frames` : "";
        const error = field("error");
        if (error) error.textContent = state.error || "";
        const video = field("video");
        if (video && state.video) {
          video.href = state.video;
          video.hidden = false;
        }
        if (state.status !== "queued" && state.status !== "running") {
          document.querySelectorAll("form[data-cancel]").forEach((form) => form.remove());
        }
      });
    });
    source.addEventListener("end", () => source.close());
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("new-video");
    if (form) newVideo(form);
    document.querySelectorAll("[data-events]").forEach(liveJobs);
  });
})();
