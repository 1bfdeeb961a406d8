"""The one page ``blockbuilder explore`` serves: a drawing pad, the class probabilities, every layer's picture.

Plain HTML, CSS and JavaScript (no external files): the page posts the canvas as PNG to ``/predict``
after each stroke and shows the JSON answer.
"""

PAGE_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>blockbuilder explore</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .6em}
#top{display:flex;gap:2em;align-items:flex-start;flex-wrap:wrap}
#pad{border:1px solid #888;background:#000;touch-action:none;cursor:crosshair}
.controls{margin-top:.5em;display:flex;gap:.6em;align-items:center}
#prediction{min-width:16em}
#prediction .best{font-size:2.2em;font-weight:bold}
.class{display:flex;align-items:center;gap:.5em;font-size:.9em;margin:.1em 0}
.class .bar{height:.8em;background:#3b6fb6;border-radius:2px}
.class .name{width:5em;text-align:right;overflow:hidden}
#error{color:#b00020;margin-top:.5em;min-height:1.2em}
#layers{display:flex;flex-wrap:wrap;gap:1em;margin-top:1.2em}
.layer{background:#fff;border:1px solid #ddd;border-radius:4px;padding:.4em;text-align:center;font-size:.75em}
.layer img{image-rendering:pixelated;display:block;margin:.3em auto 0;max-width:220px;min-width:120px}
.layer img.strip{height:14px;width:220px}
</style></head>
<body>
<h1>blockbuilder explore: draw a digit, watch every layer respond</h1>
<div id="top">
 <div>
  <canvas id="pad" width="280" height="280"></canvas>
  <div class="controls">
   <button id="clear">clear</button>
   <label>or upload an image <input id="upload" type="file" accept="image/*"></label>
  </div>
  <div id="error"></div>
 </div>
 <div id="prediction"><div class="best" id="best">?</div><div id="classes">draw in the black square</div></div>
</div>
<div id="layers"></div>
<script>
const pad = document.getElementById('pad'), ctx = pad.getContext('2d');
let drawing = false, busy = false, pending = false, last = null;
function clearPad(){ctx.fillStyle='#000';ctx.fillRect(0,0,pad.width,pad.height);}
clearPad();
ctx.lineCap='round';ctx.lineJoin='round';ctx.lineWidth=26;ctx.strokeStyle='#fff';
function point(e){const r=pad.getBoundingClientRect();return [e.clientX-r.left,e.clientY-r.top];}
pad.addEventListener('pointerdown',e=>{drawing=true;last=point(e);stroke(last);});
pad.addEventListener('pointermove',e=>{if(!drawing)return;const p=point(e);stroke(p);});
window.addEventListener('pointerup',()=>{if(drawing){drawing=false;request();}});
function stroke(p){ctx.beginPath();ctx.moveTo(last[0],last[1]);ctx.lineTo(p[0],p[1]);ctx.stroke();last=p;request();}
document.getElementById('clear').onclick=()=>{clearPad();request();};
document.getElementById('upload').onchange=e=>{const f=e.target.files[0];if(f)send(f);};
function request(){if(busy){pending=true;return;}pad.toBlob(send,'image/png');}
async function send(blob){
  busy=true;
  try{
    const kind=blob.type||'application/octet-stream';
    const r=await fetch('/predict',{method:'POST',body:blob,headers:{'Content-Type':kind}});
    if(!r.ok){document.getElementById('error').textContent=(await r.json()).error;return;}
    document.getElementById('error').textContent='';
    show(await r.json());
  }catch(err){document.getElementById('error').textContent=String(err);}
  finally{busy=false;if(pending){pending=false;request();}}
}
function show(a){
  document.getElementById('best').textContent=a.classes[0].name;
  const c=document.getElementById('classes');c.innerHTML='';
  for(const k of a.classes){
    const row=document.createElement('div');row.className='class';
    row.innerHTML='<span class="name"></span><span class="bar"></span><span class="p"></span>';
    row.children[0].textContent=k.name;row.children[1].style.width=(k.probability*12)+'em';
    row.children[2].textContent=(100*k.probability).toFixed(1)+' %';c.appendChild(row);
  }
  const box=document.getElementById('layers');box.innerHTML='';
  for(const l of a.layers){
    const d=document.createElement('div');d.className='layer';
    const t=document.createElement('div');t.textContent=l.name+'  '+l.shape.join('×');
    const i=document.createElement('img');i.src=l.image;i.alt=l.name;
    if(l.shape.length===1)i.className='strip';
    d.appendChild(t);d.appendChild(i);box.appendChild(d);
  }
}
</script>
</body></html>
"""
