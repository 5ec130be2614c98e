from gohook.cli import main_entry

main_entry()
