"""Generation: the topic x country grid through an engine (vLLM, transformers, OpenAI API) into validated
conversations."""
