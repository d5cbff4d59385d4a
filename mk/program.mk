# program.mk - building and installing one program from every .c file of its
# directory. A program's Makefile.in sets PROG, INSTALL_DIR and INSTALL_MODE
# (and optionally EXTRA_INSTALL) and then includes this file.
SRCS = $(notdir $(wildcard $(srcdir)/*.c))
OBJS = $(SRCS:.c=.o)

# A directory whose program has no sources yet builds and installs nothing.
ifeq ($(SRCS),)
all:
install:
else
all: $(PROG)

$(PROG): $(OBJS) $(LIBPETREL)
	$(CC) $(ALL_LDFLAGS) -o $@ $(OBJS) $(LIBPETREL) $(LIBS)

install: all
	$(MKDIR_P) $(DESTDIR)$(INSTALL_DIR)
	$(INSTALL) -m $(INSTALL_MODE) $(PROG) $(DESTDIR)$(INSTALL_DIR)/$(PROG)
	$(EXTRA_INSTALL)
endif

clean:
	rm -f *.o *.d $(PROG)

-include $(OBJS:.o=.d)
.PHONY: all install clean
