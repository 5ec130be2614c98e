"""gohook.events: ring-buffer records -> what happened (stage after attach, before the views).

decode: the bytes of struct gohook_event -> a frozen Event (pure; layout from gohook.bpf.abi);
symbolize: an Event -> an EventRecord with functions, files and modules of every frame.
"""
