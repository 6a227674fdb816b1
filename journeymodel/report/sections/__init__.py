"""One module per report section; each draws what the models and analyses computed."""
