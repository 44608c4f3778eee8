"""The rep's assistant: a LangGraph graph (state, context, tools, graph) and the runner the interfaces call."""
