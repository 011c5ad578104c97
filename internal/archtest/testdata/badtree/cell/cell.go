package cell // no doc comment: missing-package-doc
