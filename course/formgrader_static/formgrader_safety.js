// The two places where nbgrader 0.9.6's formgrader scripts insert a name as HTML, made to insert text.
// Loaded after nbgrader's own scripts on every formgrader page (course/formgrader_safety.py rewrites
// the templates to load it). Everything else in those scripts already uses jQuery's .text() and .val().
(function () {
    "use strict";

    // createModal(id, title, body): a string body is parsed as HTML by jQuery's .append(), and every
    // failure dialog passes one built from an assignment's or a student's name ("There was an error
    // autograding '<assignment>' for student '<id>'."). Those messages are text: show them as text.
    if (typeof window.createModal === "function") {
        var createModal = window.createModal;
        window.createModal = function (id, title, body, footer) {
            if (typeof body === "string") {
                body = $("<p/>").text(body);
            }
            return createModal(id, title, body, footer);
        };
    }

    // A student's notebook whose file is missing: its name is appended to the cell as HTML.
    // While the row is drawn, a string appended to that cell becomes a text node.
    if (window.StudentSubmittedNotebookUI) {
        var proto = window.StudentSubmittedNotebookUI.prototype;
        var render = proto.render;
        proto.render = function () {
            var cell = this.$name;
            cell.append = function (content) {
                if (typeof content === "string") {
                    content = document.createTextNode(content);
                }
                return $.fn.append.call(this, content);
            };
            try {
                return render.apply(this, arguments);
            } finally {
                delete cell.append;
            }
        };
    }
})();
