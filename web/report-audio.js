// The player of a recorded call's report. The console adds it (and this script) only when the
// call has a recording; the report itself stays a static page without scripts. Every moment of
// the report that carries a call time (`data-t-s`: empathy evidence moments, rubric evidence,
// cues) gets a ▶ button that seeks the player to that second and plays; clicking a moment's
// link does the same and still jumps to its mark on the timeline.
(function () {
  'use strict';
  const audio = document.getElementById('call-audio');
  if (!audio) return;
  const note = document.getElementById('recording-note');
  const say = (text) => {
    if (note) note.textContent = text;
  };

  function playAt(seconds) {
    const t = Math.max(0, Number(seconds) || 0);
    const start = () => {
      try {
        audio.currentTime = Number.isFinite(audio.duration) ? Math.min(t, audio.duration) : t;
      } catch (e) {
        say('Cannot seek the recording: ' + e.message);
      }
      const playing = audio.play();
      if (playing && playing.catch) {
        playing.catch((e) => say('Cannot play the recording: ' + e.message));
      }
    };
    if (audio.readyState >= 1) {
      start();
    } else {
      audio.addEventListener('loadedmetadata', start, { once: true });
      if (audio.networkState === 0 || audio.networkState === 3) audio.load();
    }
  }

  audio.addEventListener('error', () => {
    say('The recording cannot be played' + (audio.error ? ' (media error ' + audio.error.code + ')' : '') + '.');
  });

  document.querySelectorAll('[data-t-s]').forEach((el) => {
    const t = el.getAttribute('data-t-s');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'play-moment';
    button.title = 'Play the recording from ' + t + ' s';
    button.setAttribute('aria-label', button.title);
    button.dataset.playS = t;
    button.textContent = '▶';
    button.addEventListener('click', (event) => {
      event.preventDefault();
      playAt(t);
    });
    if (el.tagName === 'TR') {
      const cell = el.querySelector('td');
      if (cell) cell.prepend(button);
    } else {
      el.before(button);
    }
    if (el.tagName === 'A') el.addEventListener('click', () => playAt(t));
  });
})();
