#!/usr/bin/python3
"""A real drag source for the window tests: a small GTK window offering one
file as text/uri-list, as a file manager does. The test moves the mouse with
xdotool from this window onto the app, which receives a genuine OS drop.

    drag_source.py FILE X Y     (prints "ready" once the window is mapped)
"""
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk, Gio, GLib, Gtk  # noqa: E402

path, x, y = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
win = Gtk.Window(title="drag-source")
win.set_default_size(80, 60)
win.move(x, y)
button = Gtk.Button(label="X-ray")
button.drag_source_set(Gdk.ModifierType.BUTTON1_MASK, [], Gdk.DragAction.COPY)
button.drag_source_add_uri_targets()
button.connect("drag-data-get", lambda w, ctx, data, info, t: data.set_uris([Gio.File.new_for_path(path).get_uri()]))
win.add(button)
win.connect("destroy", Gtk.main_quit)
win.show_all()
GLib.timeout_add(300, lambda: print("ready", flush=True) and False)
GLib.timeout_add(60_000, Gtk.main_quit)  # never outlive the test
Gtk.main()
