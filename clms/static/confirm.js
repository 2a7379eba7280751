// Ask before an action that cannot be undone. A submit button that carries data-confirm (the
// danger_button macro of _forms.html) sends its form only once the person has answered yes to
// its question, which names the thing affected. Without JavaScript the form is sent as before;
// the gravest actions carry a confirmation the server checks, inside the form.
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  var question = button ? button.getAttribute("data-confirm") : null;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
