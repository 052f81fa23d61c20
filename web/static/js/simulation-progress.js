// The progress bar of a policy simulation (web/templates/staff/simulation_result.html). The
// pages' security policy allows no inline script, so this file asks the job's state
// (/staff/p/<code>/simulator/<job>/progress) every two seconds, moves the bar and, once the job
// has ended, reloads the page, which then shows the result. Without JavaScript the page offers
// a link to look again.
const box = document.getElementById("simulation-progress");

if (box) {
  const bar = box.querySelector("progress");
  const percent = document.getElementById("simulation-percent");
  const ask = async () => {
    try {
      const answer = await fetch(box.dataset.progressUrl, {headers: {Accept: "application/json"}, cache: "no-store"});
      if (answer.ok) {
        const job = await answer.json();
        if (job.done || job.failed) {
          window.location.reload();
          return;
        }
        bar.value = job.progress;
        bar.textContent = percent.textContent = `${Math.floor(job.progress * 100)} %`;
      }
    } catch {
      // The network or the service away for a moment: ask again at the next turn.
    }
    setTimeout(ask, 2000);
  };
  setTimeout(ask, 2000);
}
