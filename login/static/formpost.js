// Submits the form_post response form at once; without JavaScript its
// button does the same.
document.getElementById("formpost").submit();
